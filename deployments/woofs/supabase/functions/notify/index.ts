Deno.serve(() => new Response(JSON.stringify({ ok: true })));
