"""Providers: the ports implemented for one world each. Providers never import each other."""
