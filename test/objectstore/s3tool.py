"""Test helper run with the runtime venv: bucket and object operations through s3fs (the client the
runtime itself uses), so TypeScript tests need no S3 client of their own.

  s3tool.py ENDPOINT mkbucket BUCKET...
  s3tool.py ENDPOINT put LOCAL_FILE BUCKET/KEY
  s3tool.py ENDPOINT ls BUCKET/PREFIX      -> JSON {key: {"size": n, "etag": "..."}}
  s3tool.py ENDPOINT cat BUCKET/KEY        -> the object's bytes on stdout
Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment."""

import json
import sys

import s3fs


def main(endpoint: str, command: str, *args: str) -> None:
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, config_kwargs={"s3": {"addressing_style": "path"}})
    if command == "mkbucket":
        for bucket in args:
            if not fs.exists(bucket):
                fs.mkdir(bucket)
    elif command == "put":
        fs.put_file(args[0], args[1])
    elif command == "ls":
        found = fs.find(args[0], detail=True)
        print(
            json.dumps(
                {k: {"size": v["size"], "etag": v.get("ETag", "").strip('"')} for k, v in found.items()}
            )
        )
    elif command == "cat":
        sys.stdout.buffer.write(fs.cat_file(args[0]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(*sys.argv[1:])
