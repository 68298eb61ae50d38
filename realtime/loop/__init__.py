"""The live loop: pipeline, dream worker thread, quality governor, compose, statistics."""
