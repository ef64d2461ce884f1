"""Experiments in the synthetic world: the pollution lab, its scores, report and the SFCM diagnosis."""
