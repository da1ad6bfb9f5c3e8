#!/usr/bin/env python3
"""Generates the Python messages and gRPC stubs from the repository's proto/ into gen/.

    python3 generate.py [OUT_DIR]      # default: gen/ beside this file

It uses grpc_tools (pip's grpcio-tools, or Debian's python3-grpc-tools) when the protoc inside
it is 3.15 or newer, which the .proto files need (they use proto3 `optional`). Debian 12's
python3-grpc-tools bundles protoc 3.5.1, too old; there the script runs Debian's own protoc
(package protobuf-compiler, 3.21) with its grpc_python_plugin (package protobuf-compiler-grpc)
and takes the well-known types (google/protobuf/*.proto) from grpc_tools.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.environ.get("CONTEXT_MEMORY_PROTO_DIR",
                           os.path.join(HERE, "..", "..", "proto", "src", "main", "proto"))


def well_known_types_dir():
    try:
        import grpc_tools
        d = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        if os.path.isfile(os.path.join(d, "google", "protobuf", "struct.proto")):
            return d
    except ImportError:
        pass
    if os.path.isfile("/usr/include/google/protobuf/struct.proto"):
        return "/usr/include"
    sys.exit("generate.py: no google/protobuf/*.proto found: install grpcio-tools (or python3-grpc-tools)")


def grpc_tools_protoc_is_new_enough():
    try:
        from grpc_tools import protoc
    except ImportError:
        return False
    out = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "--version"],
                         capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    # protoc 3.15+ (and 4.x+ / 2x.x from the new numbering) accept proto3 optional without flags.
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (3, 15)


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "gen"))
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "contextmemory", "v1", "*.proto")))
    if not protos:
        sys.exit(f"generate.py: no .proto files under {PROTO_DIR}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    includes = [f"-I{PROTO_DIR}", f"-I{well_known_types_dir()}"]
    if grpc_tools_protoc_is_new_enough():
        cmd = [sys.executable, "-m", "grpc_tools.protoc", *includes,
               f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    else:
        protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
        if not protoc or not plugin:
            sys.exit("generate.py: grpc_tools' protoc is missing or older than 3.15, and protoc/grpc_python_plugin"
                     " are not on PATH: install grpcio-tools >= 1.36, or Debian's protobuf-compiler and"
                     " protobuf-compiler-grpc")
        cmd = [protoc, *includes, f"--plugin=protoc-gen-grpc_python={plugin}",
               f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    subprocess.run(cmd, check=True)
    print(f"generate.py: stubs for {len(protos)} files in {out} ({os.path.basename(cmd[0])}"
          f"{' -m grpc_tools.protoc' if cmd[0] == sys.executable else ''})")


if __name__ == "__main__":
    main()
