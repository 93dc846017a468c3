package natsexec

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Options and ServeOptions.
const (
	DefaultStream     = "ASYNCGO"
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 5
	// DefaultObjectTTL is how long an argument or result in the object
	// store outlives its call when nobody deletes it (its caller or worker
	// died).
	DefaultObjectTTL = time.Hour
	consumerName     = "workers"
)

// connOptions are the options of every connection, before the user's
// NATSOptions: reconnect for ever, and quiet asynchronous errors (nats.go
// prints them by default; the code that meets them retries).
func connOptions() []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
}

// queue is what a caller and a worker agree on: the stream, its subjects,
// the consumer and the object store's bucket, all named after the stream.
type queue struct {
	stream string
}

func (q queue) callSubject() string            { return q.stream + ".calls" }
func (q queue) resultSubject(id string) string { return q.stream + ".results." + id }
func (q queue) bucket() string                 { return q.stream + "_objects" }
func (q queue) maxDeliverAdvisory() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + q.stream + "." + consumerName
}

// queueConfig is how the stream is made, by whichever side comes first.
type queueConfig struct {
	ackWait    time.Duration
	maxDeliver int
	replicas   int
	memory     bool
	objectTTL  time.Duration
}

func (c queueConfig) streamConfig(q queue) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if c.memory {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:       q.stream,
		Subjects:   []string{q.callSubject()},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    storage,
		Replicas:   c.replicas,
		Duplicates: 2 * time.Minute,
	}
}

func (c queueConfig) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait,
		MaxDeliver:    c.maxDeliver,
		MaxAckPending: 1 << 16,
	}
}

// ensure creates the stream, its consumer and the object store if they do
// not exist. A caller (update) makes the consumer's AckWait and MaxDeliver
// its own; a worker takes what it finds.
func (c queueConfig) ensure(ctx context.Context, js jetstream.JetStream, q queue, update bool) (jetstream.Consumer, jetstream.ObjectStore, error) {
	s, err := js.Stream(ctx, q.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, c.streamConfig(q))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, q.stream)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("natsexec: stream %s: %w", q.stream, err)
	}
	var cons jetstream.Consumer
	if update {
		cons, err = s.CreateOrUpdateConsumer(ctx, c.consumerConfig())
	} else {
		cons, err = s.Consumer(ctx, consumerName)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cons, err = s.CreateOrUpdateConsumer(ctx, c.consumerConfig())
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("natsexec: consumer %s of %s: %w", consumerName, q.stream, err)
	}
	obs, err := js.ObjectStore(ctx, q.bucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		storage := jetstream.FileStorage
		if c.memory {
			storage = jetstream.MemoryStorage
		}
		obs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:   q.bucket(),
			TTL:      c.objectTTL,
			Storage:  storage,
			Replicas: c.replicas,
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("natsexec: object store %s: %w", q.bucket(), err)
	}
	return cons, obs, nil
}
