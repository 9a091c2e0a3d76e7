// Placeholder: the MigrationService module is being written.
