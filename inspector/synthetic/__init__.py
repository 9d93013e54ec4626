"""Procedural product photographs with pixel-exact instance masks.

Used by the demo, the tests and the training of the embedded model; numpy and OpenCV only.
"""
