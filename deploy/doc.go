// Package deploy holds the tests of Altair's deployment files: the container
// image (docker/), the compose stack (compose/), the Kubernetes base
// (kubernetes/), the Grafana dashboard and provisioning (grafana/), the
// Prometheus scrape config and alert rules (prometheus/) and the nginx TLS edge
// (nginx/).
//
// It is a module of its own so that the gateway's go.mod stays free of the
// Kubernetes, compose, BuildKit and Prometheus libraries these tests parse with.
// That every metric the dashboard and the alerts use is one the gateway
// exports, and that every altair.yaml here passes `altair validate`, is checked
// against the real binary by cmd/altair/e2e_deploy_test.go in the main module.
package deploy
