"""Stand-in for the upstream image's sglang package (not pullable here); see launch_server.py."""
