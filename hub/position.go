package hub

import "github.com/sluicehq/sluice/store"

// record makes ev the hub's position; h.mu is held. It only remembers
// where the hub is: the cursor for it is computed when someone asks
// (cursorLocked), so a dispatch costs no allocation for it. hidden says
// that some subscriber may not see ev (private, or on private channels).
func (h *Hub) record(ev *store.Event, hidden bool) {
	h.lastPos, h.lastTime, h.cursorOK = ev.Pos, ev.Time, false
	if !hidden {
		h.safeID = ev.ID
	}
}

// cursorLocked returns the hub's position as the cursor handed out to
// subscribers (priming event, reset head, Stats.Position); h.mu is held.
// It must reveal nothing a subscriber may not see, so it is never a
// publisher's custom id, which may name a private event: with a
// store.Positioner it is the generated id of the last event dispatched
// (before the first, the store's head, which is one too). Without one it is
// the id of the last event dispatched that is neither private nor on a
// private channel (or the head): a cursor at or before the hub's position,
// so a stream that starts from it may replay the hidden events between
// (those its subscription may see: replay filters as live delivery does),
// and a public event's custom id may still be handed out.
func (h *Hub) cursorLocked() string {
	if !h.cursorOK {
		if h.positioner != nil {
			h.posEv.Pos, h.posEv.Time = h.lastPos, h.lastTime
			h.cursor = h.positioner.PositionID(&h.posEv)
		} else {
			h.cursor = h.safeID
		}
		h.cursorOK = true
	}
	return h.cursor
}
