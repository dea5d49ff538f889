// Package deploy holds keyraft's container image (Dockerfile, FROM scratch
// around the static binary) and a Compose file for a 3-node cluster. Its Go
// test brings that Compose cluster up with a real Docker engine, drives it
// with the AWS SDK for Go v2, kills and restarts containers, and tears
// everything down again. It runs wherever a Docker engine answers and is
// skipped elsewhere (it fails instead, under CI=true, when docker is
// installed but the engine does not answer).
package deploy
