"""Reading a project into nodes, one question per module, as dbt-core's parser/ does:

- project_file: what project.yml (or dbt_project.yml) says
- config: how folder configs, YAML configs and config() merge, and what a config may hold
- files: which seeds, models, singular tests and macros the folders hold
- dependencies: what each model refers to (ref, source, config), statically or by rendering
- properties: the YAML properties: descriptions, columns, sources, generic tests
- docs: docs blocks and doc() in descriptions
- yaml_file: YAML with line numbers for messages
- cache: the partial-parse cache

The records themselves are in duckrec.core.nodes; parser.project puts the steps together
(load_project), with the other rooms: dbt_project (a dbt project read as it is), varschema
(the project's vars checked against its schema).
"""
