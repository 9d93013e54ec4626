"""Segmentation, prompt selection and the inspection stages.

The only package that imports torch and ultralytics: torch when a pipeline with its own
network is made, ultralytics when a model is loaded.
"""
