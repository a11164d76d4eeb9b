"""The plan: compile a base and a head revision and compare them, for review before apply.

`source` reads revisions from Git objects, `engine` compiles and compares them,
`resources` / `meaning` / `risk` are the three views of a change, and `report`,
`text`, `markdown` render the stable JSON document in each output format.
"""
