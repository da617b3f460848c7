"""Anomaly and theft detection on meter data (specs/analytics.md): data, attacks, detectors, evaluation."""
