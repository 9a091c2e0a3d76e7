// Placeholder: the Scenario module is being written.
