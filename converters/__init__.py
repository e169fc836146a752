"""Source model → verified .tflite models for Veil (needs the ``convert`` extra, Node.js and npm).

Run ``python -m converters nsfwjs --out models/``; see converters/README.md.
"""
