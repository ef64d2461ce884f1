"""The pairwise user study of Fig. 8: its database, sampling, analysis and simulated raters."""
