"""What a run folder becomes: Tab. 1 / 4 / 5, the leaderboard, significance tests, pictures and the Markdown / HTML report."""
