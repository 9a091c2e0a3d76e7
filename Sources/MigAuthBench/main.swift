print("migauth-bench: not yet implemented")
