"""Segmentation, prompt selection and the inspection stages.

The only package that imports torch and ultralytics, and only when a model is loaded.
"""
