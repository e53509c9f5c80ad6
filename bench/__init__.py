"""Measurements of Hearth's engines and speech stages (development tools, not installed).

Each module prints a markdown table of ratios measured in one run and writes JSON and
markdown under bench/results/.
"""
