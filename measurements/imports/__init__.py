"""Import of the Withings "Download my data" export (`bp.csv`, alone or in its ZIP archive)."""
