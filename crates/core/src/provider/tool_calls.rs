//! Numbering a stream's tool calls. Anthropic, Bedrock and the Responses API stream content in
//! indexed blocks (or output items) where tool calls sit among text and thinking, while an
//! OpenAI chunk numbers tool calls 0, 1, 2… among themselves: each translator maps the one to
//! the other through this.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct ToolCallNumbers {
    by_block: HashMap<u32, u32>,
    count: u32,
}

impl ToolCallNumbers {
    /// The number of the tool call that opens at `block`: the next one.
    pub fn open(&mut self, block: u32) -> u32 {
        let number = self.count;
        self.count += 1;
        self.by_block.insert(block, number);
        number
    }

    /// The number of the tool call at `block`; `None` when no tool call opened there (a server
    /// tool's block, or a delta for a block never announced).
    pub fn of(&self, block: u32) -> Option<u32> {
        self.by_block.get(&block).copied()
    }

    /// How many tool calls have opened.
    pub fn count(&self) -> u32 {
        self.count
    }
}
