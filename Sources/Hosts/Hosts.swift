// Placeholder: the Hosts module is being written.
