// Placeholder: the MigrationRules module is being written.
