"""``spf-bench serve``: the local web app (results browser and the study's rating pages)."""
