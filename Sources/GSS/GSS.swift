// Placeholder: the GSS module is being written.
