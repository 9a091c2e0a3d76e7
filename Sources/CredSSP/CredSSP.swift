// Placeholder: the CredSSP module is being written.
