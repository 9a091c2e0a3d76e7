// migauth: scenarios, diagnosis and a persistent simulated environment, over the Scenario library.
MigAuth.main()
