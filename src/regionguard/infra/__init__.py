"""The AWS world's infrastructure: a CDK (Python) app built from the same topology file.

Importing this package needs the `aws` extra (`pip install regionguard[aws]`).
"""
