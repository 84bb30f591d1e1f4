"""Stand-in for `python -m sglang.launch_server` of the upstream image (not pullable here): records
how the agent started it for test/images/engine-layers.test.ts, then exits."""

import json
import os
import sys

with open(os.environ["SPECOPS_STAND_IN_RECORD"], "w") as record:
    json.dump({"argv": sys.argv[1:], "uid": os.getuid(), "home": os.environ.get("HOME")}, record)
