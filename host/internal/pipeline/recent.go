package pipeline

import "sync"

// recent remembers the last n event IDs so that duplicates, which sources
// produce on reconnects and replays, are dropped before they cost a write.
// It is a FIFO window, not an LRU: an ID is forgotten n insertions after it
// was added. The store's unique key is the final guard.
type recent struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it was new.
func (r *recent) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.ids[id] = struct{}{}
	return true
}

// remove forgets id, for an event that was not accepted after all. Its slot
// in the ring stays until overwritten; deleting an absent key is harmless.
func (r *recent) remove(id string) {
	r.mu.Lock()
	delete(r.ids, id)
	r.mu.Unlock()
}
