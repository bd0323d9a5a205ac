"""Closed-loop evaluation in Drake, metrics with confidence intervals, reports and plots."""
