def handle(event):
    return {"items": event.get("items", [])}
