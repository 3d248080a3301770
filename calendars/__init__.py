"""Calendar sources read into the sweep's sessions: ids and times, never an event's contents."""
