"""Dreamable networks: a registry of ImageNet CNNs truncated after the layers a dream needs."""
