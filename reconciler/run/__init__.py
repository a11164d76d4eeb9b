"""`meshd run` and the verbs that steer it (`suspend`, `resume`, `reconcile`)."""
