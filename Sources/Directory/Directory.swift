// Placeholder: the Directory module is being written.
