print("migauth: not yet implemented")
