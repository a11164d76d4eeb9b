"""Stage 5b: plan — compare the compiled base and head revisions (DESIGN.md §5).

`source` reads revisions from Git objects, `engine` compiles and compares them,
`resources` / `meaning` / `risk` are the three views of a change, and `report`,
`text`, `markdown` render the stable JSON document in each output format.
"""
