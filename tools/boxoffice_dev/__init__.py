"""boxoffice_dev: the toolkit of ./dev, the test runners and the load tools.

    stack.py     Stack: the local servers' lifecycle in one directory
    fixture.py   TestStack: what tests do to a stack (pause, kill, extras)
    runner.py    what every test runner shares (teardown, summary line)
    http.py      the HTTP client (JSON in and out)
    redis.py     the Redis client (RESP2)
    render.py    configuration templates and the boxoffice.conf INI file
    procs.py     processes and ports
    cli.py       the command line ./dev calls (python3 -m boxoffice_dev)

Python 3 standard library only. Put tools/ on sys.path (the runners and
./dev do) and import the modules: `from boxoffice_dev import runner`.
"""
