"""Contract suites: the same tests run against the embedded and the real backend of each seam."""
