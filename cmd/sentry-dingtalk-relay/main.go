// Command sentry-dingtalk-relay turns Sentry webhooks into DingTalk robot
// cards.
//
//	sentry-dingtalk-relay [serve]                 run the relay
//	sentry-dingtalk-relay test                    send a test card to every robot
//	sentry-dingtalk-relay config                  print the effective configuration
//	sentry-dingtalk-relay render [--resource R] [--template F] FILE
//	                                              print the DingTalk JSON of a Sentry payload
//	sentry-dingtalk-relay smoke --dsn DSN         send a uniquely titled error to Sentry
//	sentry-dingtalk-relay canary                  one canary round trip through the running relay
//	sentry-dingtalk-relay deadletters list|replay [ID...|--all] [--robot NAME]
//	sentry-dingtalk-relay schema [--webhook-url URL]
//	                                              print the Sentry integration schema
//	sentry-dingtalk-relay version
//
// Configuration comes from the environment (see README).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	// Cards show local times; the zone database is compiled in so the
	// distroless image needs no OS files.
	_ "time/tzdata"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	tuneRuntime()
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// tuneRuntime sets the relay's garbage collection and scheduler unless
// GOGC, GOMEMLIMIT or GOMAXPROCS say otherwise.
//
// The live heap is a few megabytes, so Go's default (collect when the heap
// doubles, at 4 MB) collects dozens of times a second under load, and each
// pause lands on webhooks waiting for their answer. Less often, with a soft
// ceiling well under the chart's 128 MiB limit.
//
// The journal's O_DIRECT writes and bbolt's fsyncs block in the kernel for
// milliseconds while keeping their P (Go expects syscalls to be short; its
// monitor thread takes the P back only when it notices), and webhooks
// readied meanwhile wait behind them. One P more than the CPUs keeps a P
// for the webhooks while a writer waits on the disk (the README's
// Performance section has the measurements). The count is taken once at
// start, so Go no longer follows a changed cgroup limit.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
}

// run executes a subcommand and returns the exit status.
func run(args, environ []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, environ, stderr)
	case "test":
		err = testRobots(ctx, args, environ, stdout)
	case "config":
		err = showConfig(args, environ, stdout)
	case "render":
		err = render(args, environ, stdout, stderr)
	case "smoke":
		err = smoke(ctx, args, stdout)
	case "canary":
		err = canary(ctx, args, environ, stdout)
	case "deadletters":
		err = deadLetters(ctx, args, environ, stdout)
	case "schema":
		err = schema(args, stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if err != errSilent {
			fmt.Fprintln(stderr, "sentry-dingtalk-relay:", err)
		}
		return 1
	}
	return 0
}

// errSilent fails a command that already printed why.
var errSilent = fmt.Errorf("failed")

const usage = `usage: sentry-dingtalk-relay [command]

commands:
  serve                  run the relay (the default)
  test                   send a test card to every configured robot
  config                 print the effective configuration (robots, routes, warnings)
  render [--resource R] [--template FILE] PAYLOAD
                         print the DingTalk JSON a saved Sentry payload produces
  smoke --dsn DSN        send a uniquely titled error event to Sentry
  canary                 one canary round trip now, through the running relay
                         (RELAY_CANARY_DSN); exit 1 when Sentry's webhook does not come back
  deadletters list       list alerts that could not be delivered
  deadletters replay [ID...|--all] [--robot NAME]
                         queue dead letters again
  schema [--webhook-url URL]
                         print the Sentry integration schema (alert-rule action)
  version                print the version

Configuration is read from the environment; see the README.
`

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return "sentry-dingtalk-relay " + v
}
