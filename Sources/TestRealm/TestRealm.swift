// Placeholder: the TestRealm module is being written.
