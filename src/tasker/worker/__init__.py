"""Worker side: what a step handler sees and returns, how handlers are found and run."""
