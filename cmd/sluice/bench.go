package main

import "github.com/sluicehq/sluice/internal/loadgen"

func init() {
	commands["bench"] = command{summary: "load-test a hub: many subscribers, publish-to-receive latency, deliveries/s", run: loadgen.Run}
}
