package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/queue"
)

// deadLetterAdmin is what the deadletters commands need, from the running
// relay's admin socket or from the data directory directly.
type deadLetterAdmin interface {
	List(ctx context.Context) ([]relay.DeadLetterView, error)
	Replay(ctx context.Context, req relay.ReplayRequest) (relay.ReplayResult, error)
}

// deadLetters lists or replays dead letters. While the relay runs it goes
// through the relay's admin socket in RELAY_DATA_DIR; otherwise it opens the
// queue itself.
func deadLetters(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: deadletters list [--json] | deadletters replay [ID...|--all] [--robot NAME]")
	}
	sub, args := args[0], args[1:]
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	admin, done, err := openAdmin(cfg)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "list":
		fs := flag.NewFlagSet("deadletters list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args); err != nil {
			return errSilent
		}
		list, err := admin.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tBURIED\tROBOT\tPROJECT\tTITLE\tREASON")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Buried.Local().Format(time.DateTime), d.Robot,
				d.Project, formatter.Shorten(d.Title, 60), formatter.Shorten(d.Reason, 80))
		}
		return tw.Flush()
	case "replay":
		fs := flag.NewFlagSet("deadletters replay", flag.ContinueOnError)
		all := fs.Bool("all", false, "replay every dead letter")
		robot := fs.String("robot", "", "send them to this robot instead of the one each was for")
		if err := fs.Parse(args); err != nil {
			return errSilent
		}
		res, err := admin.Replay(ctx, relay.ReplayRequest{IDs: fs.Args(), All: *all, Robot: *robot})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letters queued again for %v\n", res.Replayed, res.Robots)
		return nil
	}
	return fmt.Errorf("unknown deadletters command %q: use list or replay", sub)
}

func openAdmin(cfg *config.Config) (deadLetterAdmin, func(), error) {
	if c, err := relay.DialAdmin(cfg.DataDir); err == nil {
		return c, func() {}, nil
	}
	var store relay.Store
	var err error
	if cfg.RedisURL != "" {
		store, err = queue.OpenRedis(cfg.RedisURL, queue.RedisOptions{SpoolDir: filepath.Join(cfg.DataDir, "spool")})
	} else {
		store, err = queue.OpenBolt(cfg.DataDir, queue.BoltOptions{LockTimeout: 500 * time.Millisecond})
	}
	if errors.Is(err, queue.ErrLocked) {
		return nil, nil, fmt.Errorf("a relay is running on %s but its admin socket %s does not answer", cfg.DataDir, relay.AdminSocket(cfg.DataDir))
	}
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	for _, r := range cfg.Robots {
		names[queue.RobotKey(r.Token)] = r.Name
	}
	if len(cfg.Robots) == 0 {
		names[relay.DryRunRobot] = relay.DryRunRobot
	}
	return &relay.DeadLetterAdmin{Store: store, Robots: names}, func() { store.Close() }, nil
}
