"""Coordinator monitoring: protocol rules, the daily adherence rollup, alerts, selectors, charts."""
