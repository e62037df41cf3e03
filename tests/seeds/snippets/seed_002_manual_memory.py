# Manual memory retrieval
memory = await tac.retrieve_memory(context, query="customer preferences")
