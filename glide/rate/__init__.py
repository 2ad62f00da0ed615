"""Blind pairwise human evaluation (`glide rate serve`, `glide rate report`)."""
