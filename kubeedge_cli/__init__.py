"""kubeedge_cli: the `kedge` command line — parse, call the runtime, render. Never imported by runtime/.

    entry.py       run(): the process entry; `kedge edge run` goes straight to runtime/edge/launcher.py
                   (its one parser, argparse: the edge process never loads typer), the rest to main
    main.py        the typer app: mounts one module per command (commands/), maps errors to exit codes
    options.py     global options (-o, --kubeconfig, -v, --root) before or after the command; Settings;
                   option values shared by commands (parse_duration)
    errors.py      exit_code_for(exc): runtime.errors types → design.md §7's exit codes, the one place
    render.py      stdout data (table/json/yaml), stderr messages, errors with hints, numbered Steps
    cluster.py     connect(): the cluster a command talks to, said on stderr (init, reset, token)
    statusview.py  how `kedge status` looks (sections, JSON keys); status_devices.py its device parts
    commands/      one module per command (map in commands/__init__.py)

The flow of a command: argv → entry.run → main.main → typer parses into the command's function →
ONE runtime entry point (runtime.cloud.install.init.install, runtime.edge.join.Joiner, …) →
render.* prints the result; a KedgeError raised anywhere ends in main.main as `error:` + `hint:` (or
JSON with -o json) and errors.exit_code_for's code.
"""
