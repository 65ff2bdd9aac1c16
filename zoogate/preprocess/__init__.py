"""Preprocessing: the torchvision reference built from a baseline entry, deployed variants, file writers."""
