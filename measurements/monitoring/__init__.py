"""Coordinator monitoring: protocol rules, the daily adherence rollup, alerts, selectors, charts,
and its admin (pages in `views`, list filters in `filters`)."""
